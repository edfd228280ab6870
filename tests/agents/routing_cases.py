"""Four specialists and messages that belong to each: the routing-by-description benchmark."""

from __future__ import annotations

SPECIALISTS = {
    "billing": (
        "Billing",
        "Invoices, payments, charges on a credit card, refunds, subscription fees and receipts.",
    ),
    "tech": (
        "Technical support",
        "Software bugs, error messages, crashes, installation problems, login and password issues.",
    ),
    "sales": (
        "Sales",
        "Pricing, plans, discounts, product demos, quotes and buying licences for a team.",
    ),
    "shipping": (
        "Shipping",
        "Delivery of orders, package tracking, shipping addresses, couriers and late parcels.",
    ),
}

MESSAGES = [
    ("I was charged twice on my credit card this month", "billing"),
    ("Can I get a refund for last month's subscription?", "billing"),
    ("Where can I download the invoice for my payment?", "billing"),
    ("My receipt shows the wrong amount", "billing"),
    ("Why did my subscription fee go up?", "billing"),
    ("The payment failed but money left my account", "billing"),
    ("The app crashes every time I open it", "tech"),
    ("I get an error message when I try to install the software", "tech"),
    ("I can't log in, it says my password is wrong", "tech"),
    ("There is a bug: the save button does nothing", "tech"),
    ("The program freezes after the latest update", "tech"),
    ("How much does the enterprise plan cost?", "sales"),
    ("Do you offer a discount for nonprofits?", "sales"),
    ("I'd like to book a product demo for my team", "sales"),
    ("Can you send me a quote for 50 licences?", "sales"),
    ("What's the difference in pricing between your plans?", "sales"),
    ("Where is my package? It was supposed to arrive yesterday", "shipping"),
    ("How do I track my order?", "shipping"),
    ("I need to change the delivery address for my order", "shipping"),
    ("Which courier delivers my parcel?", "shipping"),
    ("My parcel is late, it has been two weeks", "shipping"),
    ("The tracking number you sent doesn't work", "shipping"),
    ("I want to buy licences for my whole company", "sales"),
    ("The website shows a 500 error when I sign in", "tech"),
]
