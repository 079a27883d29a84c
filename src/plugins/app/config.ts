// Makes the validated configuration (and where each value came from) available as fastify.config.
import fp from 'fastify-plugin';
import type { Config, ConfigSource } from '../../config/index.js';

declare module 'fastify' {
  interface FastifyInstance {
    config: Readonly<Config>;
    configSources: Readonly<Record<string, ConfigSource>>;
  }
}

export default fp(
  async function configPlugin(
    fastify,
    opts: { config: Readonly<Config>; sources: Readonly<Record<string, ConfigSource>> },
  ) {
    fastify.decorate('config', opts.config);
    fastify.decorate('configSources', opts.sources);
  },
  { name: 'config' },
);
