/**
 * Node.js (V8) flags the coordinator, the edge worker and the simulator run
 * with, wherever they are started: the images' CMD, the helm chart's
 * commands, the `start:*` scripts, the e2e suites and the rounds bench (which
 * reads each build's own list). V8 refuses them in NODE_OPTIONS, and setting
 * them from inside a running process crashes its garbage collector, so they
 * go on the command line.
 *
 * `--single-threaded-gc`: the garbage collector's marking, sweeping and
 * scavenging stay on the process's own thread. On a machine whose cores the
 * coordinator, the workers and the servers already keep busy, V8's helper
 * threads only competed for them: by turns on two cores, ten workers with a
 * 1M-parameter model took 367 to 389 ms per round with the flag against 476
 * to 615 ms without, the coordinator's CPU per round 146 to 156 ms against
 * 302 to 387 ms; rounds of a 1,000-parameter model did not change beyond
 * the noise (README, "Measured").
 *
 * The gateway keeps V8's defaults: it answers users, and a collection on its
 * own thread would stall their requests.
 */
export const SERVICE_NODE_FLAGS: readonly string[] = ['--single-threaded-gc'];

/** The apps that run with SERVICE_NODE_FLAGS, by their folder under apps/. */
const SERVICE_APPS: ReadonlySet<string> = new Set(['coordinator', 'edge-worker', 'simulator']);

/** The node flags an app (its folder under apps/, e.g. 'coordinator') starts with: SERVICE_NODE_FLAGS, or none for the gateway and the CLI. */
export function nodeFlagsOf(app: string): readonly string[] {
  return SERVICE_APPS.has(app) ? SERVICE_NODE_FLAGS : [];
}
