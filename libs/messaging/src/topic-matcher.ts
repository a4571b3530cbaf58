/**
 * AMQP topic-exchange matching: words are separated by `.`, `*` matches exactly one word and
 * `#` zero or more words. The empty routing key has no words (as in RabbitMQ), so only `#`
 * and the empty pattern match it.
 */
export function topicMatches(pattern: string, routingKey: string): boolean {
  return matchWords(splitWords(pattern), 0, splitWords(routingKey), 0);
}

function splitWords(s: string): string[] {
  return s === '' ? [] : s.split('.');
}

function matchWords(p: string[], pi: number, k: string[], ki: number): boolean {
  while (pi < p.length) {
    const word = p[pi];
    if (word === '#') {
      // Collapse consecutive hashes, then try every possible length for this one.
      while (pi + 1 < p.length && p[pi + 1] === '#') pi++;
      if (pi + 1 === p.length) return true;
      for (let skip = ki; skip <= k.length; skip++) {
        if (matchWords(p, pi + 1, k, skip)) return true;
      }
      return false;
    }
    if (ki >= k.length) return false;
    if (word !== '*' && word !== k[ki]) return false;
    pi++;
    ki++;
  }
  return ki === k.length;
}
