import { createServer } from 'node:net';
import { ephemeralRangeStart, freePort, portSlice } from './ports';

describe('freePort', () => {
  it('hands out distinct ports below the ephemeral range, each one a listener can take on every interface', async () => {
    const ports = [];
    for (let i = 0; i < 40; i++) ports.push(await freePort());
    expect(new Set(ports).size).toBe(ports.length);
    const { from, to } = portSlice();
    for (const port of ports) {
      expect(port).toBeGreaterThanOrEqual(from);
      expect(port).toBeLessThan(Math.min(to, ephemeralRangeStart()));
    }
    for (const port of ports.slice(0, 5)) {
      const srv = createServer();
      await new Promise<void>((resolve, reject) => {
        srv.once('error', reject);
        srv.listen(port, resolve);
      });
      await new Promise((resolve) => srv.close(resolve));
    }
  });

  it('gives each jest worker its own slice of the ports below the ephemeral range', () => {
    const slices = [1, 2, 3, 4, 5, 6, 7, 8].map((w) => portSlice(w));
    expect(slices[0].from).toBe(10000);
    expect(slices[7].to).toBeLessThanOrEqual(ephemeralRangeStart());
    for (let i = 1; i < slices.length; i++) expect(slices[i].from).toBe(slices[i - 1].to);
    expect(portSlice(9)).toEqual(slices[0]);
  });
});
