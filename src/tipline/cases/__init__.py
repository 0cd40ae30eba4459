"""Cases: referral of a report to agencies, the agency's follow-up to an outcome, evidence
the agency collects (with its chain of custody) and the signed referral package."""
