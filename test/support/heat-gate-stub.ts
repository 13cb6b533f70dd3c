/** The P2.6 Heat Gate stand-in lives with the demo, which runs the worker against it too. */
export { HeatGateStub, heatExposition, type HeatGateResponse } from '../../demo/heat-gate-stub';
