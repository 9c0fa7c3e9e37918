"""What is made of results files: HTML reports with their charts, and run comparison."""
