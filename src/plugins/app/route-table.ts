// Every route the server registers (method and URL template), collected as they are added. Used by the authorization matrix test and for bounded metric labels.
import fp from 'fastify-plugin';

export interface RouteEntry {
  method: string;
  url: string;
  websocket: boolean;
}

declare module 'fastify' {
  interface FastifyInstance {
    routeTable: RouteEntry[];
  }
}

export default fp(
  async function routeTablePlugin(fastify) {
    const table: RouteEntry[] = [];
    fastify.decorate('routeTable', table);
    fastify.addHook('onRoute', (route) => {
      const methods = Array.isArray(route.method) ? route.method : [route.method];
      for (const method of methods) {
        table.push({ method, url: route.url, websocket: route.websocket === true });
      }
    });
  },
  { name: 'route-table' },
);
