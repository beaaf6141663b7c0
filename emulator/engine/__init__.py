"""The engine: trace, injector, wiring, single runs, fleets, bench runs, replay."""
