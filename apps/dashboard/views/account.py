"""Signing in and out (Django's auth views with the console's templates)."""

from __future__ import annotations

from django.contrib.auth import views as auth_views


class Login(auth_views.LoginView):
    template_name = "dashboard/account/login.html"
    redirect_authenticated_user = True


class Logout(auth_views.LogoutView):
    pass
