"""Data: embedded scenes, real-data readers, teachers, captioners and the reinforced store."""
