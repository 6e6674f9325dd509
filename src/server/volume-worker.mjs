// Worker-thread entry: the project runs TypeScript through tsx, and a worker starts with no loader hooks,
// so register tsx here and load the real worker.
import { register } from 'tsx/esm/api';

register();
await import('./volume-worker.ts');
