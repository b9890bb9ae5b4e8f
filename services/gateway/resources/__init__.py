"""The gateway's resources: one noun per route, dependencies through the
constructor. A resource's `states` says which states have its route."""
