/**
 * The reference's runtime plugins (--plugins): IPython cells (jupyter), the AgentSkills helpers in
 * them (agent_skills), VS Code (vscode: accepted, not offered). One list for the create API, OpenHands'
 * /start and the runtime server's own flag.
 */
export const RUNTIME_PLUGINS = ['agent_skills', 'jupyter', 'vscode'] as const;
export type RuntimePlugin = (typeof RUNTIME_PLUGINS)[number];
/** The reference's headless default: the IPython kernel with the AgentSkills helpers in it. */
export const DEFAULT_RUNTIME_PLUGINS: readonly RuntimePlugin[] = ['agent_skills', 'jupyter'];
/** The runtime server reads its plugin list (comma- or space-separated) from this variable. */
export const PLUGINS_ENV = 'BERTH_PLUGINS';

/** Plugin names from their written forms (comma- or space-separated, repeated), each once, in order. */
export function splitPluginList(value: string | readonly string[]): string[] {
  const names = (typeof value === 'string' ? [value] : value)
    .flatMap((v) => v.split(/[\s,]+/))
    .filter(Boolean);
  return [...new Set(names)];
}
