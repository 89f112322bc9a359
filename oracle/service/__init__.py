"""The long-running oracle service: listeners, dispatcher and relayers on a scheduler."""
