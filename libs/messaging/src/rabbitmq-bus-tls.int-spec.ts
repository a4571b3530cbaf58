import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tls from 'node:tls';
import { InboundMessage } from './message-bus';
import { RabbitMqBus } from './rabbitmq-bus';
import { CapturingLogger, eventually } from './testing/capturing-logger';
import { createTestVhost, TestVhost } from './testing/rabbitmq-test-vhost';

/**
 * amqps:// with a private CA and client certificates, end to end: a TLS terminator in front of the
 * real RabbitMQ (which listens in plain text here) verifies the client's certificate against the CA,
 * as a broker with `ssl_options.verify = verify_peer, fail_if_no_peer_cert = true` would; the bus
 * verifies the terminator's certificate against the same CA.
 */
describe('RabbitMqBus over TLS (amqps://, client certificates)', () => {
  jest.setTimeout(30_000);
  const dir = mkdtempSync(join(tmpdir(), 'fl-tls-'));
  const file = (name: string) => readFileSync(join(dir, name));
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  let vhost: TestVhost;
  let terminator: tls.Server;
  let port = 0;
  const clientNames: string[] = [];
  const buses: RabbitMqBus[] = [];
  const logger = new CapturingLogger();

  /** A CA, a certificate for `localhost` and one for a client (`site-1`), each signed by the CA; and an unrelated CA. */
  function makeCertificates(): void {
    for (const ca of ['ca', 'other-ca']) {
      openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', `/CN=fl test ${ca}`, '-keyout', `${ca}.key`, '-out', `${ca}.pem`);
    }
    const issue = (name: string, cn: string, ext: string) => {
      openssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', `/CN=${cn}`, '-keyout', `${name}.key`, '-out', `${name}.csr`);
      writeFileSync(join(dir, `${name}.ext`), ext);
      openssl('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '1', '-extfile', `${name}.ext`, '-out', `${name}.pem`);
    };
    issue('server', 'localhost', 'subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth\n');
    issue('client', 'site-1', 'extendedKeyUsage=clientAuth\n');
  }

  beforeAll(async () => {
    makeCertificates();
    vhost = await createTestVhost('fl-tls');
    const broker = new URL(vhost.url);
    terminator = tls.createServer(
      { key: file('server.key'), cert: file('server.pem'), ca: file('ca.pem'), requestCert: true, rejectUnauthorized: true },
      (socket) => {
        clientNames.push(String(socket.getPeerCertificate().subject?.CN));
        const upstream = net.connect(Number(broker.port || 5672), broker.hostname);
        socket.pipe(upstream).pipe(socket);
        const end = () => {
          socket.destroy();
          upstream.destroy();
        };
        socket.on('error', end);
        upstream.on('error', end);
        socket.on('close', end);
        upstream.on('close', end);
      },
    );
    terminator.on('tlsClientError', () => undefined);
    await new Promise<void>((resolve) => terminator.listen(0, '127.0.0.1', resolve));
    port = (terminator.address() as net.AddressInfo).port;
  });

  afterAll(async () => {
    for (const b of buses) await b.close();
    await new Promise((resolve) => terminator?.close(resolve));
    await vhost?.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  const amqpsUrl = () => {
    const u = new URL(vhost.url);
    return `amqps://${u.username}:${u.password}@localhost:${port}${u.pathname}`;
  };

  it('connects with the CA and a client certificate, and carries messages both ways', async () => {
    const bus = await RabbitMqBus.connect(amqpsUrl(), {
      logger, connectionName: 'tls-spec', tls: { ca: file('ca.pem'), cert: file('client.pem'), key: file('client.key') },
    });
    buses.push(bus);
    const got: InboundMessage[] = [];
    await bus.consume({ name: 'tls-spec', bindings: ['tls.#'] }, async (m) => {
      got.push(m);
    });
    await bus.publish('tls.hello', { name: 'hello', payload: { over: 'tls' }, attachment: Buffer.from([1, 2, 3]) });
    await eventually(async () => got.length === 1, 'the message over TLS');
    expect(got[0].payload).toEqual({ over: 'tls' });
    expect(got[0].attachment).toEqual(Buffer.from([1, 2, 3]));
    expect(clientNames).toContain('site-1');
  });

  it('refuses a broker whose certificate the configured CA did not sign', async () => {
    await expect(
      RabbitMqBus.connect(amqpsUrl(), { logger, connectTimeoutMs: 3000, tls: { ca: file('other-ca.pem'), cert: file('client.pem'), key: file('client.key') } }),
    ).rejects.toThrow(/cannot connect to RabbitMQ at amqps:\/\/guest@localhost:\d+\/fl-tls-\w+ .*(self[- ]signed|unable to verify|certificate)/i);
  });

  it('is refused by a broker that requires a client certificate when it has none', async () => {
    await expect(RabbitMqBus.connect(amqpsUrl(), { logger, connectTimeoutMs: 3000, tls: { ca: file('ca.pem') } })).rejects.toThrow(
      /cannot connect to RabbitMQ at amqps:/,
    );
  });

  it('refuses TLS material given with a plain amqp:// URL instead of silently sending in clear', async () => {
    await expect(RabbitMqBus.connect(vhost.url, { logger, tls: { ca: file('ca.pem') } })).rejects.toThrow(
      /TLS certificates are configured but the RabbitMQ URL amqp:\/\/guest@127\.0\.0\.1:5672\/fl-tls-\w+ is not amqps:\/\//,
    );
  });
});
