import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { basename, extname } from 'node:path';
import { getUseCase, modelInputs, UseCaseDefinition } from '@fl/datasets';
import { importOnnxModel, isImportedManifest, LOSSES, LossKind, ModelPackage, modelPackageFiles, Normalization, OPTIMIZER_HYPER_PARAMETERS, OptimizerKind } from '@fl/models';
import { ModelRegistry, ModelVersionInfo, publishModelPackage } from '@fl/registry';
import { UsageError } from './usage-error';

/** Largest ONNX file `models import` reads; a package above it would not fit the bus and the registry comfortably. */
export const MAX_ONNX_IMPORT_BYTES = 512 * 1024 * 1024;

/** The optimizer names of the command line and the train step's. */
export const CLI_OPTIMIZERS: Record<string, OptimizerKind> = { sgd: 'sgd', momentum: 'sgd_momentum', adam: 'adam', adamw: 'adamw' };

export interface ImportArgs {
  file: string;
  useCase: string;
  loss: LossKind;
  optimizer: OptimizerKind;
  name: string;
  learningRate?: number;
  /** The graph takes the use case's features as they are (it normalises them itself, or needs no normalisation). */
  noNormalization: boolean;
}

const VALUE_FLAGS = ['--use-case', '--loss', '--optimizer', '--name', '--learning-rate'];

/** Parses `models import <file.onnx> --use-case <name> --loss <loss> [...]` (without `models import`). */
export function parseImportArgs(args: string[]): ImportArgs {
  const values = new Map<string, string>();
  const positional: string[] = [];
  let noNormalization = false;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '--no-normalization') noNormalization = true;
    else if (VALUE_FLAGS.includes(a)) {
      const v = args[++i];
      if (v === undefined || v.startsWith('--')) throw new UsageError(`models import: ${a} needs a value`);
      if (values.has(a)) throw new UsageError(`models import: ${a} is given twice`);
      values.set(a, v);
    } else if (a.startsWith('--')) throw new UsageError(`models import: unknown option ${a}`);
    else positional.push(a);
  }
  if (positional.length !== 1) throw new UsageError(`models import needs exactly one ONNX file, got ${positional.length ? positional.join(' ') : 'none'}`);
  const file = positional[0];
  const useCase = values.get('--use-case');
  if (!useCase) throw new UsageError('models import needs --use-case <name>, e.g. --use-case iris');
  const loss = values.get('--loss');
  if (!loss) throw new UsageError(`models import needs --loss <${LOSSES.join('|')}>`);
  if (!LOSSES.includes(loss as LossKind)) throw new UsageError(`models import: unknown loss '${loss}'; expected one of ${LOSSES.join(', ')}`);
  const optimizerName = values.get('--optimizer') ?? 'sgd';
  const optimizer = CLI_OPTIMIZERS[optimizerName];
  if (!optimizer) throw new UsageError(`models import: unknown optimizer '${optimizerName}'; expected one of ${Object.keys(CLI_OPTIMIZERS).join(', ')}`);
  const name = values.get('--name') ?? basename(file, extname(file));
  let learningRate: number | undefined;
  if (values.has('--learning-rate')) {
    learningRate = Number(values.get('--learning-rate'));
    if (!(Number.isFinite(learningRate) && learningRate > 0)) throw new UsageError(`models import: --learning-rate must be a number > 0, got '${values.get('--learning-rate')}'`);
  }
  return { file, useCase, loss: loss as LossKind, optimizer, name, learningRate, noNormalization };
}

const mib = (bytes: number) => `${(bytes / (1024 * 1024)).toFixed(1)} MiB`;

/** Reads a regular file of at most `limit` bytes; refuses a larger one before reading it. */
export function readOnnxFile(path: string, limit = MAX_ONNX_IMPORT_BYTES): Buffer {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    throw new Error(`models import: cannot open ${path}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new Error(`models import: ${path} is not a file`);
    if (st.size === 0) throw new Error(`models import: ${path} is empty`);
    if (st.size > limit) throw new Error(`models import: ${path} is ${mib(st.size)}; model imports are limited to ${mib(limit)}`);
    const buf = Buffer.allocUnsafe(st.size);
    let read = 0;
    while (read < st.size) {
      const got = readSync(fd, buf, read, st.size - read, read);
      if (got === 0) break;
      read += got;
    }
    if (read !== st.size) throw new Error(`models import: ${path} changed while it was read`);
    return buf;
  } finally {
    closeSync(fd);
  }
}

/**
 * The model's inputs as the use case defines them (number features, then
 * one-hot categorical values), with their standardisation; none when every
 * input is left as it is.
 */
export function useCaseInputs(uc: UseCaseDefinition): { names: string[]; normalization: Normalization | null } {
  const { names, mean, std, federated } = modelInputs(uc);
  // Federated statistics: placeholders now, computed from the sites' rows at the start of each task.
  if (federated) return { names, normalization: { mean, std, statistics: { method: 'federated', standardize: federated } } };
  const identity = mean.every((v) => v === 0) && std.every((v) => v === 1);
  return { names, normalization: identity ? null : { mean, std } };
}

/**
 * Builds the package `models import` publishes; throws naming the problem, with nothing published.
 * `uc`: the use case's definition when it is not a file one (stored at the gateway).
 */
export function buildImportPackage(args: ImportArgs, onnx: Buffer, uc: UseCaseDefinition = getUseCase(args.useCase)): { pkg: ModelPackage; useCase: UseCaseDefinition } {
  const inputs = useCaseInputs(uc);
  const sgdFamily = args.optimizer === 'sgd' || args.optimizer === 'sgd_momentum';
  const pkg = importOnnxModel(onnx, {
    name: args.name,
    useCase: uc.name,
    featureNames: inputs.names,
    classes: uc.label.classes,
    normalization: args.noNormalization ? null : inputs.normalization,
    loss: args.loss,
    optimizer: args.optimizer,
    defaults: {
      ...uc.model.defaults,
      // the use case's learning rate is tuned for SGD; Adam's own default suits Adam better
      learning_rate: args.learningRate ?? (sgdFamily ? uc.model.defaults.learning_rate : OPTIMIZER_HYPER_PARAMETERS[args.optimizer].lr),
    },
    sourceFile: basename(args.file),
  });
  return { pkg, useCase: uc };
}

/**
 * Publishes an imported package under its manifest's name, tagged with its use
 * case, as `models publish` does for a default model: the same package again
 * returns the existing version.
 */
export async function publishImportedPackage(registry: ModelRegistry, pkg: ModelPackage, useCase: string): Promise<{ version: ModelVersionInfo; created: boolean }> {
  const { name } = pkg.manifest;
  const source = isImportedManifest(pkg.manifest) && pkg.manifest.source ? ` from ${pkg.manifest.source.file}` : '';
  await registry.createModel(name, { description: `ONNX model imported${source} for use case '${useCase}'`, tags: { use_case: useCase } });
  return publishModelPackage(registry, name, modelPackageFiles(pkg), { use_case: useCase });
}
