/** When a pip failure may be a SKIPPED (PyPI unreachable) and when it must fail its suite. */
import { describe, expect, it } from 'vitest';
import { pypiUnreachable } from '../support/pypi.js';

const run = (out: string, timedOut = false) => ({ out, timedOut, code: 1 });

describe('pypiUnreachable', () => {
  it('names the connection failure when PyPI could not be reached', () => {
    const out =
      "WARNING: Retrying (Retry(total=4)) after connection broken by 'NewConnectionError(': Failed to establish a new connection: [Errno 111] Connection refused')'\nERROR: No matching distribution found for pytest==9.2.0";
    expect(pypiUnreachable(run(out))).toMatch(/^PyPI unreachable: .*Connection refused/);
    expect(pypiUnreachable(run('Temporary failure in name resolution'))).toMatch(/name resolution/);
    expect(pypiUnreachable(run('', true), 'pip install')).toBe(
      'pip install ran out of time (PyPI too slow or unreachable)',
    );
  });

  it('is undefined for a bad pin or an unsupported Python, which must fail the suite', () => {
    expect(
      pypiUnreachable(
        run(
          'ERROR: Could not find a version that satisfies the requirement mypy==99\nERROR: No matching distribution found for mypy==99',
        ),
      ),
    ).toBeUndefined();
    expect(
      pypiUnreachable(run('ERROR: Package requires a different Python: 3.11.2 not in >=3.12')),
    ).toBeUndefined();
  });
});
