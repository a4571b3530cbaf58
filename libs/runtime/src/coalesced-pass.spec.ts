import { CoalescedPass } from './coalesced-pass';

describe('CoalescedPass', () => {
  /** A pass that stays open until released, counting its runs. */
  function gatedPass() {
    const releases: (() => void)[] = [];
    let runs = 0;
    const pass = new CoalescedPass(async () => {
      runs++;
      await new Promise<void>((resolve) => releases.push(resolve));
    });
    const releaseNext = async () => {
      while (!releases.length) await Promise.resolve();
      releases.shift()!();
    };
    return { pass, releaseNext, runs: () => runs };
  }

  it('runs one pass at a time, and once more for every burst of calls made while one ran', async () => {
    const { pass, releaseNext, runs } = gatedPass();
    const first = pass.run();
    const joined = [pass.run(), pass.run(), pass.run()];
    expect(runs()).toBe(1);
    await releaseNext();
    await releaseNext();
    await Promise.all([first, ...joined]);
    expect(runs()).toBe(2);
    // Idle again: the next call starts a pass of its own.
    const later = pass.run();
    await releaseNext();
    await later;
    expect(runs()).toBe(3);
  });

  it('hands a failure to every caller of that pass, and runs afresh on the next call', async () => {
    let fail = true;
    const pass = new CoalescedPass(async () => {
      if (fail) throw new Error('broker away');
    });
    await expect(Promise.all([pass.run(), pass.run()])).rejects.toThrow('broker away');
    fail = false;
    await expect(pass.run()).resolves.toBeUndefined();
  });

  it('idle() waits for the pass in flight, failed or not', async () => {
    const { pass, releaseNext } = gatedPass();
    await pass.idle();
    let idle = false;
    const running = pass.run();
    const waiting = pass.idle().then(() => (idle = true));
    await Promise.resolve();
    expect(idle).toBe(false);
    await releaseNext();
    await Promise.all([running, waiting]);
    expect(idle).toBe(true);
  });
});
