import { Injectable, Logger } from '@nestjs/common';
import { Offer, RoundCollector } from './round-collector';
import { Phase } from './rounds.repository';

/** The phases answers are collected for: a round's fit and evaluate, and the statistics before round 1. */
export type CollectPhase = Phase | 'stats';

export interface Answer<P> {
  payload: P;
  attachment?: Buffer;
  /** The attachment's SHA-256 where the bus has checked the bytes against it (BusContext.attachmentSha256). */
  attachmentSha256?: string;
}

/** Hands each worker's answer to the collector of its task, round and phase; answers nobody waits for are acknowledged and ignored. */
@Injectable()
export class ResultRouter {
  private readonly log = new Logger(ResultRouter.name);
  private readonly open = new Map<string, RoundCollector<Answer<unknown>>>();
  /** Workers that said goodbye and have not announced themselves since. */
  private readonly departed = new Set<string>();

  private key(taskId: number, round: number, phase: CollectPhase): string {
    return `${taskId}:${round}:${phase}`;
  }

  register<P>(taskId: number, round: number, phase: CollectPhase, collector: RoundCollector<Answer<P>>): () => void {
    const k = this.key(taskId, round, phase);
    this.open.set(k, collector as RoundCollector<Answer<unknown>>);
    // A worker that left between being chosen and being asked is not waited for either.
    for (const node of this.departed) collector.drop(node);
    return () => {
      if (this.open.get(k) === collector) this.open.delete(k);
    };
  }

  /** A worker that left: every open round, and every round opened until it is back, stops waiting for it (it counts as missing). */
  dropNode(node: string): void {
    this.departed.add(node);
    for (const c of this.open.values()) c.drop(node);
  }

  /** A worker announced itself again. */
  nodeBack(node: string): void {
    this.departed.delete(node);
  }

  route(taskId: number, round: number, phase: CollectPhase, node: string, answer: Answer<unknown>): Offer {
    const c = this.open.get(this.key(taskId, round, phase));
    return this.noted(taskId, round, phase, node, c ? c.offer(node, answer) : 'closed');
  }

  /** The same as route, settling once the round's handler has finished with the answer (a large update folded in a slice at a time). */
  async routeAsync(taskId: number, round: number, phase: CollectPhase, node: string, answer: Answer<unknown>): Promise<Offer> {
    const c = this.open.get(this.key(taskId, round, phase));
    return this.noted(taskId, round, phase, node, c ? await c.offerAsync(node, answer) : 'closed');
  }

  private noted(taskId: number, round: number, phase: CollectPhase, node: string, offer: Offer): Offer {
    if (offer !== 'accepted') this.log.log(`task ${taskId} round ${round} ${phase}: answer from ${node} ignored (${offer})`);
    return offer;
  }
}
