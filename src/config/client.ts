/** Where clients (the CLI) find the control plane: flags first, then BERTH_URL, BERTH_PORT, BERTH_API_KEY. */
export interface ClientConfig {
  url: string;
  apiKey: string | undefined;
}

export function loadClientConfig(
  flags: { url?: string | undefined; apiKey?: string | undefined },
  env: NodeJS.ProcessEnv = process.env,
): ClientConfig {
  const port = env.BERTH_PORT || '3000';
  return Object.freeze({
    url: flags.url ?? env.BERTH_URL ?? `http://127.0.0.1:${port}`,
    apiKey: flags.apiKey ?? (env.BERTH_API_KEY?.split(',')[0]?.trim() || undefined),
  });
}
