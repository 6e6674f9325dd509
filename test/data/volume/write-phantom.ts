// Writes the synthetic series (explicit VR LE) that the compressed fixtures are transcoded from.
import { phantomSeries } from './phantom.ts';
import { writeSeries } from '../../support/dicom.ts';
writeSeries(process.argv[2]!, phantomSeries());
