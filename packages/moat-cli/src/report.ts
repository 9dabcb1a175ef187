import { styleText } from 'node:util';

/**
 * Live status lines for long-running commands (`lab up`, `lab down`, `dev`).
 * Colour only when the stream is a TTY and NO_COLOR is unset (styleText checks both).
 */
export interface Reporter {
  step(message: string): void;
  ok(message: string): void;
  warn(message: string): void;
  fail(message: string): void;
  info(message: string): void;
}

export function consoleReporter(stream: NodeJS.WriteStream = process.stdout): Reporter {
  const paint = (format: Parameters<typeof styleText>[0], text: string) =>
    styleText(format, text, { stream, validateStream: true });
  const line = (text: string) => stream.write(`${text}\n`);
  return {
    step: (m) => line(`${paint('cyan', '•')} ${m}`),
    ok: (m) => line(`${paint('green', '✓')} ${m}`),
    warn: (m) => line(`${paint('yellow', '!')} ${m}`),
    fail: (m) => line(`${paint(['red', 'bold'], '✗')} ${m}`),
    info: (m) => line(`  ${m}`),
  };
}

/** A reporter that drops everything (for tests and --json). */
export const silentReporter: Reporter = { step() {}, ok() {}, warn() {}, fail() {}, info() {} };
