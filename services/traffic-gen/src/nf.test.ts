import { describe, expect, it } from 'vitest';
import { trafficGenSchema } from './nf';

describe('traffic-gen nf config', () => {
  it('fills defaults', () => {
    expect(trafficGenSchema.parse({})).toEqual({ poolSize: 16383, burst: 32 });
  });

  it('refuses a key it does not know, naming it, rather than taking the default in silence', () => {
    const r = trafficGenSchema.safeParse({ burts: 64, poolSize: 65535 });
    expect(r.success).toBe(false);
    expect(r.error?.issues[0]).toMatchObject({ code: 'unrecognized_keys', keys: ['burts'] });
  });
});
