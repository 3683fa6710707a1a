"""Offline demo pieces: a provider-like scripted chat model and a LangGraph agent built on it."""

from __future__ import annotations

from .model import ScriptedChatModel, ScriptedModelError

__all__ = ["ScriptedChatModel", "ScriptedModelError"]
