#!/bin/sh
# Example hook: replace with your own check.
echo "check-db: $DRPLAN_GROUP on $DRPLAN_SITE ($DRPLAN_MACHINES)"
