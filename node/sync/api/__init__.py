"""Client-server API handlers of the sync area, one module per spec section."""
