import { Injectable, Logger } from '@nestjs/common';
import { Offer, RoundCollector } from './round-collector';
import { Phase } from './rounds.repository';

export interface Answer<P> {
  payload: P;
  attachment?: Buffer;
}

/** Hands each worker's answer to the collector of its task, round and phase; answers nobody waits for are acknowledged and ignored. */
@Injectable()
export class ResultRouter {
  private readonly log = new Logger(ResultRouter.name);
  private readonly open = new Map<string, RoundCollector<Answer<unknown>>>();

  private key(taskId: number, round: number, phase: Phase): string {
    return `${taskId}:${round}:${phase}`;
  }

  register<P>(taskId: number, round: number, phase: Phase, collector: RoundCollector<Answer<P>>): () => void {
    const k = this.key(taskId, round, phase);
    this.open.set(k, collector as RoundCollector<Answer<unknown>>);
    return () => {
      if (this.open.get(k) === collector) this.open.delete(k);
    };
  }

  /** A worker that left: every open round stops waiting for it (it counts as missing). */
  dropNode(node: string): void {
    for (const c of this.open.values()) c.drop(node);
  }

  route(taskId: number, round: number, phase: Phase, node: string, answer: Answer<unknown>): Offer {
    const c = this.open.get(this.key(taskId, round, phase));
    const offer = c ? c.offer(node, answer) : 'closed';
    if (offer !== 'accepted') this.log.log(`task ${taskId} round ${round} ${phase}: answer from ${node} ignored (${offer})`);
    return offer;
  }
}
