import { topicMatches } from './topic-matcher';

describe('topicMatches', () => {
  it.each([
    ['round.fit', 'round.fit', true],
    ['round.fit', 'round.fit-result', false],
    ['round.*', 'round.fit', true],
    ['round.*', 'round', false],
    ['round.*', 'round.fit.site-a', false],
    ['*.fit', 'round.fit', true],
    ['*', 'round', true],
    ['*', '', false],
    ['#', '', true],
    ['#', 'a', true],
    ['#', 'a.b.c', true],
    ['round.#', 'round', true],
    ['round.#', 'round.fit', true],
    ['round.#', 'round.fit.site-a', true],
    ['round.#', 'rounds.fit', false],
    ['#.site-a', 'site-a', true],
    ['#.site-a', 'round.fit.site-a', true],
    ['#.site-a', 'round.fit.site-b', false],
    ['worker.#.fit', 'worker.fit', true],
    ['worker.#.fit', 'worker.a.b.fit', true],
    ['worker.#.fit', 'worker.a.b.fit.x', false],
    ['worker.*.#', 'worker', false],
    ['worker.*.#', 'worker.a', true],
    ['#.#', 'a.b', true],
    ['#.*', '', false],
    ['#.*', 'a', true],
    ['a.*.c', 'a..c', true],
    ['', '', true],
    ['', 'a', false],
    ['a.b', 'a.b.', false],
  ])('%p matches %p: %p', (pattern, key, expected) => {
    expect(topicMatches(pattern, key)).toBe(expected);
  });
});
