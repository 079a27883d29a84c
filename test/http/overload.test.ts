// Load shedding (@fastify/under-pressure): when the event loop has been saturated, requests get 503
// SERVER_OVERLOADED with Retry-After instead of everyone slowing down, and service resumes by itself.
import type { FastifyPluginAsync } from 'fastify';
import { describe, expect, it } from 'vitest';
import { useTestApp } from '../helper.js';

const blockingRoutes: FastifyPluginAsync = async (instance) => {
  instance.get('/block', { config: { public: true } }, async () => {
    const until = Date.now() + 250;
    while (Date.now() < until) {
      // Busy on purpose: this is what a saturated event loop looks like.
    }
    return { blocked: true };
  });
};

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('load shedding', () => {
  const testApp = useTestApp({ server: { max_event_loop_delay_ms: 100 } }, { routes: blockingRoutes });
  const app = () => testApp().app;

  it('answers 503 SERVER_OVERLOADED with Retry-After after a stall, then recovers', async () => {
    expect((await app().inject({ method: 'GET', url: '/api/v2/health/live' })).statusCode).toBe(200);
    // Saturated for two seconds: every one-second window of the load sampler is mostly stalls. (One
    // long stall is not enough: the sampler averages over its window, so where the stall falls in it
    // decides.) The short sleeps let the sampler's timer run between stalls, as real traffic would.
    // Once the server sheds, the stalling requests themselves are refused: that ends the stalls.
    for (let stall = 0; stall < 8; stall++) {
      const response = await app().inject({ method: 'GET', url: '/api/v2/_test/block' });
      if (response.statusCode === 503) break;
      expect(response.statusCode).toBe(200);
      await sleep(1);
    }
    await sleep(50);

    const shed = await app().inject({ method: 'GET', url: '/api/v2/health/live' });
    expect(shed.statusCode).toBe(503);
    expect(shed.headers['retry-after']).toBe('5');
    expect(shed.json()).toMatchObject({
      statusCode: 503,
      code: 'SERVER_OVERLOADED',
      error: 'Service Unavailable',
    });
    expect(shed.json().request_id).toBe(shed.headers['x-request-id']);

    // The next samples see a quiet loop again.
    let status = 503;
    for (let attempt = 0; attempt < 40 && status === 503; attempt++) {
      await sleep(100);
      status = (await app().inject({ method: 'GET', url: '/api/v2/health/live' })).statusCode;
    }
    expect(status).toBe(200);
  });
});
