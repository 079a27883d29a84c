// The real application on a real port for the hub tests, with the conversation test config.
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll } from 'vitest';
import { buildTestApp, type TestApp } from '../helper.js';
import { conversationOverrides } from '../conversations/fixtures.js';

export interface ListeningApp {
  app: TestApp['app'];
  testApp: TestApp;
  port: number;
}

export async function startListening(
  extra: Record<string, Record<string, unknown>> = {},
): Promise<ListeningApp> {
  const testApp = await buildTestApp(conversationOverrides(extra));
  await testApp.app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = testApp.app.server.address() as AddressInfo;
  return { app: testApp.app, testApp, port };
}

/** One listening app for the whole file, closed afterwards. */
export function useListeningApp(extra: Record<string, Record<string, unknown>> = {}): () => ListeningApp {
  let listening: ListeningApp | undefined;
  beforeAll(async () => {
    listening = await startListening(extra);
  });
  afterAll(async () => {
    await listening?.testApp.close();
  });
  return () => {
    if (!listening) throw new Error('the app is not listening yet');
    return listening;
  };
}
