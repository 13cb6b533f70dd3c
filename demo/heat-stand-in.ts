import { Command, InvalidArgumentError } from 'commander';
import { HeatGateStub } from '../dev/heat-gate-stub';

/** The address the worker reads heat from by default (HEAT_GATE_METRICS_URL). */
export const DEFAULT_HEAT_PORT = 8056;

function heatValue(raw: string): number {
  const value = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(value) || value < 0 || value > 1) throw new InvalidArgumentError('expected a number in [0,1]');
  return value;
}

function portValue(raw: string): number {
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0 || value > 65535) throw new InvalidArgumentError('expected a port in 0-65535');
  return value;
}

/**
 * A stand-in for the P2.6 Heat Gate, for a local try: serves `p26_heat_value <heat>` on
 * http://127.0.0.1:<port>/metrics until Ctrl-C. The demo and the local feeder run the same stand-in
 * in-process; this runs it alone (`npm run heat-stand-in -- --heat 0.3`).
 */
export function heatStandInCli(): Command {
  return new Command('heat-stand-in')
    .description('serve p26_heat_value on http://127.0.0.1:<port>/metrics, as the P2.6 Heat Gate does, until Ctrl-C')
    .option('--heat <value>', 'the heat to serve, in [0,1]', heatValue, 0.65)
    .option('--port <port>', 'port on 127.0.0.1 (the worker reads 8056 by default)', portValue, DEFAULT_HEAT_PORT)
    .exitOverride()
    .action(async (options: { heat: number; port: number }) => {
      let stub: HeatGateStub;
      try {
        stub = await HeatGateStub.start(options.port);
      } catch (error) {
        process.stderr.write(`cannot listen on 127.0.0.1:${options.port} (${(error as NodeJS.ErrnoException).code ?? 'error'}); choose another with --port\n`);
        process.exit(3);
      }
      stub.serveHeat(options.heat);
      process.stdout.write(`P2.6 heat stand-in: p26_heat_value ${options.heat} at ${stub.url} (Ctrl-C stops it)\n`);
      const stop = (): void => void stub.close().then(() => process.exit(0));
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
}

if (require.main === module) {
  heatStandInCli()
    .parseAsync(process.argv)
    .catch((error: unknown) => process.exit((error as { exitCode?: number }).exitCode === 0 ? 0 : 2));
}
