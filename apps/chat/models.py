from __future__ import annotations

from django.db import models

from apps.core.models import TenantOwnedModel


class Thread(TenantOwnedModel):
    """A conversation the model sees whole; its id is client-named (`thread_…`) or generated."""

    thread_id = models.CharField(max_length=71)
    title = models.CharField(max_length=200, blank=True)
    model = models.CharField(max_length=100, blank=True)
    last_message = models.TextField(blank=True)
    # The agent holding the thread (PROTOCOL.md §11): the next message goes to it unless the
    # request names another agent or releases it (`"agent": null`).
    agent = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "thread_id"], name="chat_thread_id_per_tenant")
        ]
        indexes = [models.Index(fields=["tenant", "updated_at"], name="chat_thread_recent")]

    def __str__(self) -> str:
        return self.thread_id


class Chat(TenantOwnedModel):
    """One exchange (request and reply). Standalone when `thread` is empty; GET /chat lists those."""

    chat_id = models.CharField(max_length=40)
    thread = models.ForeignKey(Thread, null=True, blank=True, on_delete=models.CASCADE, related_name="chats")
    model = models.CharField(max_length=100)
    snippet = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "chat_id"], name="chat_chat_id_per_tenant")]
        indexes = [models.Index(fields=["tenant", "created_at"], name="chat_chat_recent")]

    def __str__(self) -> str:
        return self.chat_id


class Message(TenantOwnedModel):
    class Status(models.TextChoices):
        COMPLETE = "complete"
        INCOMPLETE = "incomplete"  # the stream was cut, cancelled or failed part way

    message_id = models.CharField(max_length=40)
    chat = models.ForeignKey(Chat, on_delete=models.CASCADE, related_name="messages")
    thread = models.ForeignKey(
        Thread, null=True, blank=True, on_delete=models.CASCADE, related_name="messages"
    )
    role = models.CharField(max_length=20)
    content = models.TextField(blank=True)
    agent = models.CharField(max_length=100, blank=True)
    step = models.PositiveSmallIntegerField(null=True, blank=True)  # its turn in a multi-agent run
    model = models.CharField(max_length=100, blank=True)
    tool_calls = models.JSONField(default=list, blank=True)
    input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.COMPLETE)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "message_id"], name="chat_message_id_per_tenant")
        ]

    def __str__(self) -> str:
        return self.message_id
