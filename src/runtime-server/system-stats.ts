/**
 * Resource figures for /server_info, in the reference's shape. CPU percent is measured over the time
 * since the previous call rather than by sleeping 0.1 s per request as the reference does.
 */
import { readFile } from 'node:fs/promises';
import { totalmem } from 'node:os';

let lastCpu = process.cpuUsage();
let lastAt = process.hrtime.bigint();

async function procField(file: string, name: string): Promise<number | undefined> {
  const text = await readFile(file, 'utf8').catch(() => '');
  const line = text.split('\n').find((l) => l.startsWith(`${name}:`));
  const value = line?.split(/\s+/)[1];
  return value === undefined ? undefined : Number(value);
}

export async function readProcessStats(): Promise<Record<string, unknown>> {
  const cpu = process.cpuUsage(lastCpu);
  const at = process.hrtime.bigint();
  const elapsedUs = Number(at - lastAt) / 1000;
  lastCpu = process.cpuUsage();
  lastAt = at;
  const rss = process.memoryUsage.rss();
  const vmsKb = await procField('/proc/self/status', 'VmSize');
  return {
    cpu_percent: elapsedUs > 0 ? Math.round(((cpu.user + cpu.system) / elapsedUs) * 1000) / 10 : 0,
    memory: { rss, vms: (vmsKb ?? 0) * 1024, percent: Math.round((rss / totalmem()) * 10000) / 100 },
    io: {
      read_bytes: (await procField('/proc/self/io', 'read_bytes')) ?? 0,
      write_bytes: (await procField('/proc/self/io', 'write_bytes')) ?? 0,
    },
  };
}
