"""creditline: customer credit for cloud resellers."""
