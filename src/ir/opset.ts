/** The ONNX opset every graph we write declares (default domain). */
export const OPSET = 17;
