import { expect } from 'chai';
import { redactUrl } from '../../../lib/redis/client';

describe('redactUrl', () => {
  it('hides the password of a URL', () => {
    expect(redactUrl('redis://default:s3cret@redis:6379/0')).to.equal('redis://default:***@redis:6379/0');
  });
  it('hides a lone credential (redis://:password@ or redis://token@)', () => {
    expect(redactUrl('redis://:s3cret@redis:6379')).to.equal('redis://:***@redis:6379');
    expect(redactUrl('redis://token@redis:6379')).to.equal('redis://***@redis:6379');
  });
  it('hides credentials of a string that is not a URL', () => {
    expect(redactUrl('redis//user:pw@host::')).not.to.contain('pw');
  });
  it('leaves a URL without credentials as it is', () => {
    expect(redactUrl('redis://127.0.0.1:6379')).to.equal('redis://127.0.0.1:6379');
  });
});
