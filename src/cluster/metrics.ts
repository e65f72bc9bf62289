import { type Server, createServer } from 'node:http';
import { Gauge, Registry } from 'prom-client';
import type { Instance } from './instance.ts';

/**
 * The supervisor's own Prometheus endpoint (GET /metrics on --metrics-port): restarts
 * per instance, each instance's state, and which readers nginx sends requests to.
 */
export function serveSupervisorMetrics(host: string, port: number, instances: () => Instance[], inRotation: (instance: Instance) => boolean): Server {
  const registry = new Registry();
  const registers = [registry];
  new Gauge({
    name: 'haarseek_supervisor_restarts_total', help: 'Restarts of each instance after a crash or a stall (requested shutdowns excluded).', labelNames: ['instance'], registers,
    collect() { this.reset(); for (const i of instances()) this.set({ instance: i.spec.name }, i.restarts); },
  });
  new Gauge({
    name: 'haarseek_supervisor_instance_state', help: '1 for the state each instance is in (starting, healthy, unhealthy, backoff, given-up, stopped).', labelNames: ['instance', 'state'], registers,
    collect() { this.reset(); for (const i of instances()) this.set({ instance: i.spec.name, state: i.state }, 1); },
  });
  new Gauge({
    name: 'haarseek_upstream_reader', help: '1 when nginx sends requests to this reader, 0 when it was taken out of the upstream.', labelNames: ['instance'], registers,
    collect() { this.reset(); for (const i of instances()) if (i.spec.role === 'reader') this.set({ instance: i.spec.name }, inRotation(i) ? 1 : 0); },
  });
  const server = createServer((req, res) => {
    if (req.method === 'GET' && req.url === '/metrics') {
      void registry.metrics().then((text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text));
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('GET /metrics\n');
    }
  });
  server.listen(port, host);
  return server;
}
