from django.apps import AppConfig


class ApprovalsConfig(AppConfig):
    name = "approvals"

    def ready(self):
        from agents.hooks import register_human_review
        from approvals.review import ApprovalsReview

        register_human_review(ApprovalsReview())
