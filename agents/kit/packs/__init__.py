"""Knowledge packs (data): one YAML file per project, read by agents.kit.knowledge.

See README "Teach Driftwise a custom resource".
"""
