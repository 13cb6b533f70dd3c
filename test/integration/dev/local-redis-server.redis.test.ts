import { expect } from 'chai';
import { LocalRedisServer } from '../../../dev/local-redis-server';
import { connectedClient } from '../../support/redis';

describe('LocalRedisServer', () => {
  it('starts a private server on a free port that answers commands, and stops it', async () => {
    const server = await LocalRedisServer.start();
    const client = await connectedClient(server);
    try {
      expect(server.port).to.not.equal(6379);
      expect(await client.ping()).to.equal('PONG');
      expect(await client.config('GET', 'save')).to.deep.equal(['save', '']);
    } finally {
      client.disconnect();
      await server.stop();
    }
    expect(server.running).to.equal(false);
  });

  it('says how to install redis-server when the binary is missing', async () => {
    let message = '';
    try {
      await LocalRedisServer.start({ binary: '/nonexistent/redis-server' });
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).to.contain('apt-get install redis-server');
  });
});
