import { Inject, Injectable, OnApplicationShutdown } from '@nestjs/common';
import { createModelRunner, decodePackageBundle, ModelRunner, readModelPackage, sha256Hex } from '@fl/models';
import { EdgeWorkerConfig, WORKER_CONFIG } from '../config';

interface Entry {
  runner: ModelRunner;
  classes: number;
}

/**
 * Model packages received from coordinators, by content hash, with their
 * onnxruntime sessions ready: the built-in classifier or an imported model,
 * whichever runner the package's manifest asks for. Only a few are kept: a site trains one or two
 * models at a time.
 */
@Injectable()
export class PackageCache implements OnApplicationShutdown {
  private static readonly CAPACITY = 4;
  private readonly entries = new Map<string, Entry>();

  constructor(@Inject(WORKER_CONFIG) private readonly config: EdgeWorkerConfig) {}

  has(sha256: string): boolean {
    return this.entries.has(sha256);
  }

  /** `verifiedSha256`: the bundle's hash as the bus checked it (a chunked transfer), so that a large package is not hashed twice. */
  async add(sha256: string, bundle: Buffer, verifiedSha256?: string): Promise<void> {
    if (this.entries.has(sha256)) return;
    const actual = verifiedSha256 ?? sha256Hex(bundle);
    if (actual !== sha256) throw new Error(`model package does not match its sha256 (expected ${sha256}, got ${actual})`);
    const pkg = readModelPackage(decodePackageBundle(bundle));
    const runner = await createModelRunner(pkg, { intraOpNumThreads: this.config.ORT_THREADS });
    this.entries.set(sha256, { runner, classes: pkg.manifest.classes.length });
    while (this.entries.size > PackageCache.CAPACITY) {
      const [oldest, entry] = this.entries.entries().next().value as [string, Entry];
      this.entries.delete(oldest);
      await entry.runner.release();
    }
  }

  get(sha256: string): ModelRunner {
    const e = this.entries.get(sha256);
    if (!e) throw new Error(`model package ${sha256.slice(0, 12)}… was not received by this worker`);
    return e.runner;
  }

  async onApplicationShutdown(): Promise<void> {
    for (const e of this.entries.values()) await e.runner.release();
    this.entries.clear();
  }
}
