// The harness lives in dev/ (shared with bench/ and demo/, never shipped); tests import it from here.
export * from '../../dev/redis-sentinel';
