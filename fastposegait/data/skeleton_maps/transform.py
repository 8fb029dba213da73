"""Registered SkeletonMap transform: renders pose sequences into skeleton maps on the fly."""
