// The harness lives in dev/ (shared with bench/, never shipped); tests import it from here.
export * from '../../dev/python';
