"""ClassRec's own common code: settings, message schemas, Redis Streams helpers, logging."""
