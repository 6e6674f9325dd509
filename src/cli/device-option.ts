// --device for the commands that run networks (train, eval, predict, serve): one definition, one resolution.
// Imports no ONNX Runtime: WebGPU is probed in a child process (src/runtime/device.ts).
import { Option, type Command } from 'commander';
import { DEVICE_CHOICES, resolveDevice, type Device, type DeviceChoice } from '../runtime/device.ts';

export interface DeviceFlags {
  device: DeviceChoice;
}

/** Adds `--device cpu|webgpu|auto` (default cpu) to a command. */
export function addDeviceOption(cmd: Command): Command {
  return cmd.addOption(
    new Option(
      '--device <device>',
      "where ONNX Runtime runs the network: cpu, webgpu (onnxruntime-node's WebGPU execution provider: Dawn on Vulkan on Linux; needs a GPU driver) or auto (WebGPU when a session can be created on it, else the CPU, saying which)",
    )
      .choices([...DEVICE_CHOICES])
      .default('cpu'),
  );
}

/**
 * The device the flags mean here (probing WebGPU once for webgpu and auto); says which on `say` (stderr by
 * default) for webgpu and auto. --device webgpu where WebGPU cannot run throws the one-line UserError.
 */
export async function deviceFromFlags(flags: DeviceFlags, say: (line: string) => void = (line) => console.error(line)): Promise<Device> {
  const { device, note } = await resolveDevice(flags.device);
  if (note) say(note);
  return device;
}
