"""The assembly floor: app builder, CLI, settings. Nothing else imports this package."""
