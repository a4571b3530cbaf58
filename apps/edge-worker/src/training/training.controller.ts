import { Controller, Inject, Logger } from '@nestjs/common';
import { Ctx, EventPattern, Payload } from '@nestjs/microservices';
import { EvaluateResultPayload, FitConfig, FitResultPayload, ModelPackagePayload, Msg, parsePayload, RoundInstructionPayload, StatsRequestPayload, StatsResultPayload } from '@fl/contracts';
import { GaussianNoise, privatizeUpdateLocally, WeightMap } from '@fl/aggregation';
import { BusContext, MessageBus, sha256HexYielding } from '@fl/messaging';
import { decodeSafetensors, encodeFeatureSums, encodeSafetensors, featureSums, ModelRunner, NamedTensors, sha256Hex, TrainingCancelledError } from '@fl/models';
import { BUS, TaskLogger } from '@fl/runtime';
import { EdgeWorkerConfig, WORKER_CONFIG } from '../config';
import { SiteData } from '../site/site-data.service';
import { KeptWeights } from './kept-weights';
import { PackageCache } from './package-cache';
import { TrainingCancellations } from './training-cancellations';

/**
 * Trains and evaluates next to the data. What leaves the site: weights (as
 * safetensors bytes), losses, accuracies and example counts; never rows.
 * A round instruction not naming this site is ignored; a failure becomes an
 * error answer, so the coordinator hears of it instead of waiting it out.
 */
@Controller()
export class TrainingController {
  private readonly log = new Logger(TrainingController.name);
  private readonly answered = new Set<string>();

  constructor(
    @Inject(BUS) private readonly bus: MessageBus,
    @Inject(WORKER_CONFIG) private readonly config: EdgeWorkerConfig,
    private readonly site: SiteData,
    private readonly packages: PackageCache,
    private readonly cancellations: TrainingCancellations,
    private readonly kept: KeptWeights,
  ) {}

  private get me(): string {
    return this.config.NODE_NAME;
  }

  @EventPattern(Msg.ModelPackage)
  async modelPackage(@Payload() raw: unknown, @Ctx() ctx: BusContext): Promise<void> {
    const p = parsePayload(ModelPackagePayload, raw);
    if (!ctx.attachment) throw new Error('model.package without a package attached');
    await this.packages.add(p.package_sha256, ctx.attachment, ctx.attachmentSha256);
    this.taskLog(p).log(`model package ${p.package_sha256.slice(0, 12)}… ready for task ${p.task_id}`);
  }

  @EventPattern(Msg.RoundFit)
  async fit(@Payload() raw: unknown, @Ctx() ctx: BusContext): Promise<void> {
    const p = parsePayload(RoundInstructionPayload, raw);
    if (!this.isForMe(p, ctx)) return;
    const started = Date.now();
    let answer: FitResultPayload;
    let attachment: Buffer | undefined;
    // The weights are the last round's result: its evaluation travels with this fit, done before training.
    const evaluating = p.evaluates_round !== undefined && (p.evaluators ?? []).includes(this.me);
    let evaluation: EvaluateResultPayload | undefined;
    const run = this.cancellations.begin(p.task_id);
    try {
      if (this.cancellations.isCancelled(p.task_id)) throw new TrainingCancelledError(0);
      if (!p.config) throw new Error('fit instruction without a training configuration');
      const received = p.kept_weights ? this.keptFor(p) : ctx.attachment;
      const { weights, split } = this.prepare(p, received, p.kept_weights ? undefined : ctx.attachmentSha256);
      const runner = this.packages.get(p.package_sha256);
      if (evaluating) {
        evaluation = await this.evaluateOn(p, weights, split.test, p.evaluates_round!);
        if (evaluation.status === 'ok') this.taskLog(p).log(`round ${p.round}: evaluated round ${p.evaluates_round}'s weights on ${evaluation.examples} held-out examples before training`);
      }
      if (this.config.TRAINING === 'skip') {
        attachment = received!;
        answer = { ...this.envelope(p), status: 'ok', examples: split.train.n, train_loss: 0, duration_ms: Date.now() - started, weights_sha256: p.weights_sha256 };
        // QFedAvg's loss on the received weights, zero as the training loss is: nothing was computed.
        if (p.config.report_loss_before_fit) answer.loss_before_fit = 0;
        this.taskLog(p).log(`round ${p.round}: training skipped (TRAINING=skip): the received weights go back`);
      } else {
        const from = p.kept_weights ? ', from the weights kept at the last evaluation' : '';
        this.taskLog(p).log(`round ${p.round}: training on ${split.train.n} examples for ${p.config.local_epochs} epoch(s)${from}`);
        // QFedAvg weighs the update by the received weights' loss on the rows it trains on: one pass before training, only when asked.
        const lossBeforeFit = p.config.report_loss_before_fit ? (await runner.evaluate(weights, split.train)).loss : undefined;
        const out = await runner.train(weights, split.train, {
          epochs: p.config.local_epochs,
          batchSize: p.config.batch_size,
          learningRate: p.config.learning_rate,
          seed: p.config.seed,
          proximalMu: p.config.proximal_mu,
          signal: run.signal,
          onStep: run.onStep,
        });
        attachment = encodeSafetensors(this.privatize(out.weights, weights, p.config));
        // FedAvg weighs by the site's number of training examples, not by examples x epochs.
        // A large model's update is hashed a slice at a time, letting the connection's heartbeats through (0.77 s per GiB here).
        const weightsSha256 = await sha256HexYielding(attachment);
        answer = { ...this.envelope(p), status: 'ok', examples: split.train.n, train_loss: out.meanLoss, duration_ms: Date.now() - started, weights_sha256: weightsSha256 };
        if (lossBeforeFit !== undefined) answer.loss_before_fit = lossBeforeFit;
        this.taskLog(p).log(`round ${p.round}: trained on ${split.train.n} examples in ${answer.duration_ms} ms, loss ${out.meanLoss.toFixed(4)}`);
      }
    } catch (err) {
      answer = { ...this.envelope(p), status: 'error', error: (err as Error).message, examples: 0, train_loss: 0, duration_ms: Date.now() - started };
      if (err instanceof TrainingCancelledError) {
        const at = run.stepsAtCancel === undefined ? 'before training' : `the cancel arrived after batch ${run.stepsAtCancel}`;
        this.taskLog(p).log(`task ${p.task_id} round ${p.round}: training stopped after ${err.steps} batch(es), task cancelled (${at})`);
      } else {
        this.taskLog(p).warn(`task ${p.task_id} round ${p.round} fit failed: ${(err as Error).message}`);
      }
    } finally {
      run.end();
    }
    answer.trained_from = p.weights_sha256;
    if (evaluating) answer.evaluation = evaluation ?? this.failedEvaluation(p, p.evaluates_round!, answer.error ?? 'not evaluated', 0);
    // The weights' hash goes with them: a large update is then not hashed again to be sent in chunks.
    await this.bus.publish(p.reply_to, { name: Msg.RoundFitResult, payload: { ...answer }, attachment, ...(attachment ? { attachmentSha256: answer.weights_sha256 } : {}) });
  }

  /** The answer to an evaluation of `round`'s weights on the site's held-out rows; a failure is an error answer, so that a fit still goes on. */
  private async evaluateOn(p: RoundInstructionPayload, weights: NamedTensors, test: Parameters<ModelRunner['evaluate']>[1], round: number): Promise<EvaluateResultPayload> {
    const started = Date.now();
    try {
      const r = await this.packages.get(p.package_sha256).evaluate(weights, test);
      return { ...this.envelope({ ...p, round }), status: 'ok', examples: r.examples, loss: r.loss, accuracy: r.accuracy, duration_ms: Date.now() - started };
    } catch (err) {
      this.taskLog(p).warn(`task ${p.task_id} round ${round} evaluation failed: ${(err as Error).message}`);
      return this.failedEvaluation(p, round, (err as Error).message, Date.now() - started);
    }
  }

  @EventPattern(Msg.RoundEvaluate)
  async evaluate(@Payload() raw: unknown, @Ctx() ctx: BusContext): Promise<void> {
    const p = parsePayload(RoundInstructionPayload, raw);
    if (!this.isForMe(p, ctx)) return;
    const started = Date.now();
    let answer: EvaluateResultPayload;
    try {
      const { weights, split } = this.prepare(p, ctx.attachment, ctx.attachmentSha256);
      answer = await this.evaluateOn(p, weights, split.test, p.round);
      // The same weights start the task's next round: kept, the next fit can come without them.
      if (answer.status === 'ok' && p.keep_weights && this.kept.keep(p.task_id, p.weights_sha256, ctx.attachment!)) answer.kept_weights_sha256 = p.weights_sha256;
    } catch (err) {
      answer = this.failedEvaluation(p, p.round, (err as Error).message, Date.now() - started);
      this.taskLog(p).warn(`task ${p.task_id} round ${p.round} evaluation failed: ${(err as Error).message}`);
    }
    await this.bus.publish(p.reply_to, { name: Msg.RoundEvaluateResult, payload: { ...answer } });
  }

  /**
   * Sums of the site's training rows per model input (count, sums, sums of
   * squares), for the task's federated standardisation: aggregates only,
   * never a row.
   */
  @EventPattern(Msg.RoundStats)
  async stats(@Payload() raw: unknown, @Ctx() ctx: BusContext): Promise<void> {
    const p = parsePayload(StatsRequestPayload, raw);
    if (!this.isForMe(p, ctx)) return;
    let answer: StatsResultPayload;
    let attachment: Buffer | undefined;
    try {
      const split = this.site.split(p.use_case);
      if (!split) throw new Error(`this site holds no data for use case '${p.use_case}'`);
      const { train } = split;
      if (train.features !== p.features) throw new Error(`the model takes ${p.features} inputs, this site's rows of '${p.use_case}' have ${train.features}`);
      if (train.n === 0) throw new Error(`this site holds no training rows of '${p.use_case}'`);
      attachment = encodeFeatureSums(featureSums(train.x, train.n, train.features));
      answer = { ...this.envelope(p), status: 'ok', examples: train.n };
      this.taskLog(p).log(`sent the sums of ${train.n} training rows for the task's standardisation`);
    } catch (err) {
      answer = { ...this.envelope(p), status: 'error', error: (err as Error).message, examples: 0 };
      this.taskLog(p).warn(`task ${p.task_id}: statistics failed: ${(err as Error).message}`);
    }
    await this.bus.publish(p.reply_to, { name: Msg.RoundStatsResult, payload: { ...answer }, attachment });
  }

  /**
   * Local differential privacy (the task's `privacy.mode: local`): the update's
   * difference to the global weights clipped to the task's norm, and Gaussian
   * noise from the operating system's generator added, before it leaves the site.
   */
  private privatize(update: NamedTensors, global: NamedTensors, config: FitConfig): NamedTensors {
    if (config.dp_clipping_norm === undefined) return update;
    const settings = { clippingNorm: config.dp_clipping_norm, noiseMultiplier: config.dp_noise_multiplier ?? 0 };
    return privatizeUpdateLocally(update as WeightMap, global as WeightMap, settings, GaussianNoise.secure()) as NamedTensors;
  }

  private envelope(p: { task_id: number; round: number; correlation_id?: string }) {
    return { task_id: p.task_id, round: p.round, sender: this.me, correlation_id: p.correlation_id };
  }

  /** The error answer to an evaluation of `round`'s weights, naming why. */
  private failedEvaluation(p: RoundInstructionPayload, round: number, error: string, durationMs: number): EvaluateResultPayload {
    return { ...this.envelope({ ...p, round }), status: 'error', error, examples: 0, loss: 0, accuracy: 0, duration_ms: durationMs };
  }

  private taskLog(p: { task_id: number; round: number; correlation_id?: string }): TaskLogger {
    return new TaskLogger(this.log, { task_id: p.task_id, round: p.round, correlation_id: p.correlation_id });
  }

  /**
   * Only instructions naming this site, each message answered once: a
   * redelivery of one already answered is not trained twice. A new message
   * for the same round (a coordinator resuming the task) is a new request.
   */
  private isForMe(p: { participants: string[] }, ctx: BusContext): boolean {
    if (!p.participants.includes(this.me)) return false;
    const key = ctx.messageId;
    if (this.answered.has(key)) return false;
    this.answered.add(key);
    if (this.answered.size > 1000) this.answered.delete(this.answered.values().next().value as string);
    return true;
  }

  /** A fit that comes without weights: those kept from the task's last evaluation. */
  private keptFor(p: RoundInstructionPayload): Buffer {
    const kept = this.kept.take(p.task_id, p.weights_sha256);
    if (!kept) throw new Error(`the global weights ${p.weights_sha256.slice(0, 12)}… to train from were not kept here (did this worker restart?); the next instruction brings them`);
    return kept;
  }

  /** `verifiedSha256`: the weights' hash as the bus checked it (a chunked transfer), so that a large model is not hashed twice. */
  private prepare(p: RoundInstructionPayload, attachment: Buffer | undefined, verifiedSha256?: string) {
    const split = this.site.split(p.use_case);
    if (!split) throw new Error(`this site holds no data for use case '${p.use_case}'`);
    if (!attachment) throw new Error('round instruction without global weights attached');
    if ((verifiedSha256 ?? sha256Hex(attachment)) !== p.weights_sha256) throw new Error('global weights do not match their sha256');
    const weights = decodeSafetensors(attachment).tensors as NamedTensors;
    return { weights, split };
  }
}
