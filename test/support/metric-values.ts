// The helper lives in dev/ (shared with bench/); tests import it from here.
export * from '../../dev/metric-values';
