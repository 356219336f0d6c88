/** Configuration of every Berth process; the only code that reads process.env. */
export * from './control-plane.js';
export * from './docker.js';
export * from './runtime-server.js';
