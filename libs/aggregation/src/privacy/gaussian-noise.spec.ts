import { GaussianNoise } from './gaussian-noise';

describe('GaussianNoise', () => {
  it('is reproducible under a seed', () => {
    const a = new GaussianNoise(5);
    const b = new GaussianNoise(5);
    const c = new GaussianNoise(6);
    const xs = Array.from({ length: 10 }, () => a.next());
    expect(Array.from({ length: 10 }, () => b.next())).toEqual(xs);
    expect(Array.from({ length: 10 }, () => c.next())).not.toEqual(xs);
  });

  it('has mean 0, variance 1 and normal tails over 200k draws', () => {
    const g = new GaussianNoise(123);
    const n = 200_000;
    let s = 0;
    let s2 = 0;
    let beyond2 = 0;
    for (let i = 0; i < n; i++) {
      const x = g.next();
      s += x;
      s2 += x * x;
      if (Math.abs(x) > 1.959964) beyond2++;
    }
    const mean = s / n;
    expect(Math.abs(mean)).toBeLessThan(0.01); // standard error 0.0022
    expect(Math.abs(s2 / n - mean * mean - 1)).toBeLessThan(0.015); // standard error 0.0032
    expect(Math.abs(beyond2 / n - 0.05)).toBeLessThan(0.003); // P(|Z| > 1.96) = 0.05, standard error 0.0005
  });

  it('adds noise of the given standard deviation and refuses a negative one', () => {
    const v = new Float64Array(100_000);
    new GaussianNoise(9).addTo(v, 3);
    const sd = Math.sqrt(v.reduce((a, x) => a + x * x, 0) / v.length);
    expect(Math.abs(sd - 3)).toBeLessThan(0.05);
    expect(() => new GaussianNoise(1).addTo(v, -1)).toThrow('noise standard deviation must be >= 0, got -1');
  });
});
