"""The closed loop of a session without a window: the controller, its jobs and events, what it stores.

``controller.LoopController`` holds the loop's state (response log, readout fits, candidate pool) and
makes its decisions (when to refit, which results are stale, which images come next); the window's
closed-loop panel and ``compactrig loop run`` both drive it and draw or print what it tells them.
"""
