/** Berth's version, as the API (/health, openapi.json) and `berth --version` report it; package.json's (a test keeps them equal). */
export const VERSION = '0.1.0';
